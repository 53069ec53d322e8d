# ControlNet GUI test, run by CTest: gui_controlnet.sh trains a tiny base + ControlNet
# with difflab-cli, starts difflab in Xvfb with --controlnet, draws a stroke on the canvas
# with xdotool, clicks Generate and checks the screenshot. Skipped without Xvfb/xdotool.
#
# Variables: APP (difflab), CLI (difflab-cli), CHECK (png_check), SRC, WORK.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(
  COMMAND bash ${SRC}/tests/gui_controlnet.sh ${APP} ${CLI} ${SRC} ${WORK} ${CHECK}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
  TIMEOUT 560)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gui_controlnet.sh failed (${rc}):\n${out}\n${err}")
endif()
