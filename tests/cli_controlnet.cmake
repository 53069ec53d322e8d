# CLI test of the ControlNet commands, run by CTest on MNIST with a tiny network (a few
# steps: the plumbing, not the quality): train a base, train-controlnet on it (a run folder
# as --base), eval-controlnet (edge F1 with and without, pictures; a mask ControlNet scored
# by IoU), sample --controlnet with a canny hint, a drawn scribble PNG and a distance map,
# and clear errors for a missing hint, a base checkpoint given as a ControlNet and a
# ControlNet whose base has changed.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(tiny --set model.base_channels=16 --set "model.channel_mult=[1,2]"
         --set "model.attention_resolutions=[]" --set data.max_train=256 --threads 1)

function(run)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${SRC} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  message(STATUS "${out}")
endfunction()

function(expect_error pattern)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${SRC} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT err MATCHES "${pattern}")
    message(FATAL_ERROR "expected an error matching '${pattern}' from ${ARGN}, got ${rc}:\n${out}\n${err}")
  endif()
  message(STATUS "refused as expected: ${err}")
endfunction()

run(${CLI} train ${tiny} --steps 2 --set train.batch_size=8 --set train.sample_every=0
    --out ${WORK}/base --quiet)
run(${CLI} train-controlnet ${tiny} --base ${WORK}/base --steps 2 --set controlnet.batch_size=8
    --eval-every 2 --out ${WORK}/cn)
if(NOT last_out MATCHES "test [0-9.]+ \\(base alone [0-9.]+\\)")
  message(FATAL_ERROR "train-controlnet printed no test losses")
endif()
# --resume keeps the run's own settings (embedded in controlnet.pt), as train --resume does: a
# cosine schedule given at the start stays without repeating its --set.
run(${CLI} train-controlnet ${tiny} --base ${WORK}/base --steps 2 --set controlnet.batch_size=8
    --set controlnet.lr_schedule=cosine --eval-every 0 --out ${WORK}/cn_resume)
run(${CLI} train-controlnet ${tiny} --base ${WORK}/base --steps 3 --eval-every 0
    --out ${WORK}/cn_resume --resume)
file(READ ${WORK}/cn_resume/config.yaml resumed_config)
if(NOT last_out MATCHES "at step 2" OR NOT last_out MATCHES "trained 3 steps"
   OR NOT resumed_config MATCHES "lr_schedule: cosine" OR NOT resumed_config MATCHES "batch_size: 8")
  message(FATAL_ERROR "the resumed ControlNet did not keep its settings:\n${last_out}\n${resumed_config}")
endif()
run(${CLI} eval-controlnet --controlnet ${WORK}/cn/controlnet.pt --n 4 --steps 2 --threads 1
    --out ${WORK}/eval)
if(NOT last_out MATCHES "with ControlNet +1.00 +[0-9.]+ +[0-9.]+ +[0-9.]+" OR NOT EXISTS ${WORK}/eval/with_controlnet.png)
  message(FATAL_ERROR "eval-controlnet gave no scores or pictures")
endif()
run(${CLI} canny ${SRC}/assets/readme/mnist_20min_ddim50_cfg3.png ${WORK}/picture_edges.png)
run(${CLI} sample --controlnet ${WORK}/cn/controlnet.pt --hint ${SRC}/assets/readme/mnist_20min_ddim50_cfg3.png
    --hint-kind canny --n 2 --steps 2 --threads 1 --out ${WORK}/canny_samples.png)
if(NOT EXISTS ${WORK}/canny_samples_hint.png)
  message(FATAL_ERROR "sample --controlnet wrote no hint picture")
endif()
run(${CLI} sample --controlnet ${WORK}/cn/controlnet.pt --hint ${WORK}/picture_edges.png
    --hint-kind scribble --control-scale 0.5 --n 2 --steps 2 --threads 1 --out ${WORK}/scribble_samples.png)
# A mask ControlNet: trained, scored by the IoU of silhouettes, steered by a distance map
# (a plane it was not trained on: allowed, it is the user's choice).
run(${CLI} train-controlnet ${tiny} --base ${WORK}/base --steps 1 --hint mask --set controlnet.batch_size=8
    --out ${WORK}/cn_mask)
run(${CLI} eval-controlnet --controlnet ${WORK}/cn_mask/controlnet.pt --n 4 --steps 2 --threads 1
    --out ${WORK}/eval_mask)
if(NOT last_out MATCHES "4 mask hints" OR NOT last_out MATCHES "ratio [0-9.]+x \\(IoU with / without\\)"
   OR NOT EXISTS ${WORK}/eval_mask/scores.csv)
  message(FATAL_ERROR "eval-controlnet of a mask ControlNet gave no IoU")
endif()
run(${CLI} sample --controlnet ${WORK}/cn_mask/controlnet.pt --hint ${SRC}/assets/readme/mnist_20min_ddim50_cfg3.png
    --hint-kind distance --n 2 --steps 2 --threads 1 --out ${WORK}/distance_samples.png)
expect_error("--hint-kind mixed: choose one of canny, scribble, hough, mask, distance" ${CLI} sample
             --controlnet ${WORK}/cn_mask/controlnet.pt --hint ${WORK}/picture_edges.png --hint-kind mixed)
expect_error("--edge-scale applies to canny hints only" ${CLI} eval-controlnet
             --controlnet ${WORK}/cn_mask/controlnet.pt --edge-scale 2)

expect_error("needs --hint" ${CLI} sample --controlnet ${WORK}/cn/controlnet.pt --n 2 --steps 2)
expect_error("is a model checkpoint, not a ControlNet checkpoint" ${CLI} eval-controlnet --controlnet ${WORK}/base/checkpoints/step_00000002.pt)
# Train the base one more step: the ControlNet no longer belongs to it.
run(${CLI} train ${tiny} --steps 3 --set train.batch_size=8 --set train.sample_every=0
    --out ${WORK}/base --resume latest --quiet)
expect_error("other base weights" ${CLI} eval-controlnet --controlnet ${WORK}/cn/controlnet.pt
             --base ${WORK}/base/checkpoints/step_00000003.pt --n 2 --steps 2)
