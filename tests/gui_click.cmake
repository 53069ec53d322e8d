# GUI click test, run by CTest: gui_click.sh starts difflab in Xvfb, clicks the real
# Train button with xdotool at the position the app printed (--print-layout), and
# expects training to start. Skipped (SKIPPED in the output) without Xvfb / xdotool.
#
# Variables: APP (difflab), SRC (source tree), WORK (scratch folder).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(
  COMMAND bash ${SRC}/tests/gui_click.sh ${APP} ${SRC} ${WORK}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
  TIMEOUT 500)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gui_click.sh failed (${rc}):\n${out}\n${err}")
endif()
