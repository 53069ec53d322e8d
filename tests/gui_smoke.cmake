# GUI smoke test, run by CTest: start difflab under Xvfb with the scripted sequence
# (load MNIST, train a few steps, stop, sample DDIM 10 steps n=16, scrub to the middle
# frame), which exits 0 after writing a screenshot; then check the PNG is a real picture.
#
# Variables: APP (difflab), CHECK (png_check), SRC (source tree), WORK (scratch folder).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

find_program(XVFB_RUN xvfb-run)
if(NOT XVFB_RUN)
  message("SKIPPED: xvfb-run not found (apt-get install xvfb xauth)")
  return()
endif()

set(shot ${WORK}/smoke.png)
# A small UNet and a short run keep the test to well under a minute on two cores.
execute_process(
  COMMAND ${XVFB_RUN} -a -s "-screen 0 1280x800x24"
          ${APP} --config configs/mnist.yaml --script smoke --screenshot ${shot} --timeout 400
          --threads 1
          --set train.steps=20 --set train.batch_size=16 --set data.max_train=2000
          --set model.base_channels=16 --set model.channel_mult=[1,2]
          --set model.attention_resolutions=[] --set train.out_dir=${WORK}/run
  WORKING_DIRECTORY ${SRC}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
  TIMEOUT 500)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "difflab --script smoke failed (${rc}):\n${out}\n${err}")
endif()
foreach(line "\\[smoke\\] data ready" "\\[smoke\\] samples ready" "\\[smoke\\] scrubber at frame"
             "\\[smoke\\] scrubber: wrote [0-9]+ frames to" "\\[smoke\\] ok")
  if(NOT out MATCHES "${line}")
    message(FATAL_ERROR "missing progress line '${line}' in:\n${out}")
  endif()
endforeach()
if(NOT EXISTS ${shot})
  message(FATAL_ERROR "no screenshot at ${shot}")
endif()
execute_process(COMMAND ${CHECK} ${shot} 1280 800 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "screenshot check failed: ${out}${err}")
endif()
message(STATUS "${out}")

# The scrubber's Export GIF: an animated GIF of the trajectory, decoded and checked.
execute_process(COMMAND ${CHECK} ${shot}.trajectory.gif 60 60 RESULT_VARIABLE rc OUTPUT_VARIABLE gif_out
                ERROR_VARIABLE gif_err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "trajectory GIF check failed: ${gif_out}${gif_err}")
endif()
message(STATUS "${gif_out}")

# A bad --set must fail before a window opens, naming the key.
execute_process(COMMAND ${APP} --set train.lerning_rate=3 --frames 1
                WORKING_DIRECTORY ${SRC} RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(rc EQUAL 0 OR NOT err MATCHES "lerning_rate")
  message(FATAL_ERROR "bad --set not reported clearly (${rc}): ${err}")
endif()
