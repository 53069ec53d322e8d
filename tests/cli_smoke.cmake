# Headless CLI smoke test, run by CTest: train two steps on a 2-D toy set, resume for
# two more, sample from the checkpoint, export a schedule, and check the files exist.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

set(common --config ${SRC}/configs/toy2d.yaml --out ${WORK}/run --threads 1 --quiet
    --set train.batch_size=32 --set train.sample_every=0 --set train.eval_every=2
    --set data.toy_points=512)
run(${CLI} train ${common} --steps 2)
run(${CLI} train ${common} --steps 4 --resume latest)
foreach(f run/metrics.csv run/config.yaml run/checkpoints/latest run/checkpoints/step_00000004.pt
          run/samples/final.png)
  if(NOT EXISTS ${WORK}/${f})
    message(FATAL_ERROR "missing ${WORK}/${f}")
  endif()
endforeach()
# Training again into the same --out without --resume never touches that run: the new run
# goes to the next free numbered folder.
file(SHA256 ${WORK}/run/checkpoints/step_00000004.pt ckpt_before)
file(READ ${WORK}/run/metrics.csv metrics_before)
execute_process(COMMAND ${CLI} train ${common} --steps 2 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "holds another run; this one goes to .*run-2")
  message(FATAL_ERROR "a second run into the same folder: ${rc}\n${out}\n${err}")
endif()
file(SHA256 ${WORK}/run/checkpoints/step_00000004.pt ckpt_after)
file(READ ${WORK}/run/metrics.csv metrics_after)
if(NOT ckpt_before STREQUAL ckpt_after OR NOT metrics_before STREQUAL metrics_after
   OR NOT EXISTS ${WORK}/run-2/checkpoints/step_00000002.pt)
  message(FATAL_ERROR "the first run's files changed, or the second run is not in run-2")
endif()
# metrics.csv holds one row per log interval as training goes (here every step: eval_every=2
# and log_every=50 → rows at 2 and 4, plus the resumed run's rows).
file(STRINGS ${WORK}/run/metrics.csv rows)
list(LENGTH rows nrows)
if(nrows LESS 3)
  message(FATAL_ERROR "metrics.csv has ${nrows} lines")
endif()
# A run that diverges (resumed at lr 1e30: the loss of the second step after it is inf or nan)
# stops with rc 3, names the step and the last good checkpoint, and leaves that file as it was.
set(diverge --config ${SRC}/configs/toy2d.yaml --out ${WORK}/diverged --threads 1 --quiet
    --set train.batch_size=32 --set train.sample_every=0 --set data.toy_points=512
    --set train.warmup_steps=0 --set train.grad_clip=0)
run(${CLI} train ${diverge} --steps 2)
file(SHA256 ${WORK}/diverged/checkpoints/step_00000002.pt good_before)
execute_process(COMMAND ${CLI} train ${diverge} --set train.lr=1e30 --steps 20 --resume latest
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(SHA256 ${WORK}/diverged/checkpoints/step_00000002.pt good_after)
if(NOT rc EQUAL 3 OR NOT err MATCHES "loss is (inf|nan) at step 4; the weights were left as they were after step 3"
   OR NOT err MATCHES "the last good checkpoint is [^\n]*step_00000002.pt"
   OR NOT good_before STREQUAL good_after)
  message(FATAL_ERROR "a diverging run: rc ${rc}\n${out}\n${err}")
endif()
run(${CLI} sample --run ${WORK}/run --sampler ddim --steps 5 --n 16 --out ${WORK}/grid.png --threads 1)
run(${CLI} sample --run ${WORK}/run --sampler heun --sigmas karras --rho 5 --steps 4 --n 8
    --out ${WORK}/grid_heun.png --threads 1)
# bench times one network call a step: DDIM for DDPM, Euler where DDIM does not apply.
foreach(objective ddpm flow_matching)
  execute_process(COMMAND ${CLI} bench --config ${SRC}/configs/toy2d.yaml --threads 1
                  --set diffusion.objective=${objective} --train-steps 1 --sample-steps 1
                  --large 8 --large-steps 2 --no-kernels
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(objective STREQUAL "ddpm")
    set(want "sample \\(DDIM, batch 16\\): [0-9.]+ ms/step")
  else()
    set(want "sample \\(Euler, batch 16\\): [0-9.]+ ms/step")
  endif()
  if(NOT rc EQUAL 0 OR NOT out MATCHES "${want}" OR NOT out MATCHES "sample 8 images")
    message(FATAL_ERROR "bench with ${objective}: ${rc}\n${out}\n${err}")
  endif()
endforeach()
run(${CLI} schedule --kind cosine --steps 100 --respace 10 --csv ${WORK}/cosine.csv)
file(STRINGS ${WORK}/cosine.csv rows)
list(LENGTH rows n)
if(NOT n EQUAL 11)
  message(FATAL_ERROR "schedule CSV has ${n} lines, expected 11")
endif()
# A broken config must fail with a message naming the file.
file(WRITE ${WORK}/bad.yaml "train:\n  lerning_rate: 3\n")
execute_process(COMMAND ${CLI} train --config ${WORK}/bad.yaml RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "bad.yaml" OR NOT err MATCHES "lerning_rate")
  message(FATAL_ERROR "bad config not reported clearly: ${rc} ${err}")
endif()
# eval scores images and --nll needs 8-bit images: the toy run's points are refused clearly.
execute_process(COMMAND ${CLI} eval --run ${WORK}/run --threads 1 RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "2-D point data cannot be scored")
  message(FATAL_ERROR "eval of a 2-D point model not reported clearly: ${rc} ${err}")
endif()
execute_process(COMMAND ${CLI} eval --nll --run ${WORK}/run --threads 1 RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "8-bit")
  message(FATAL_ERROR "eval --nll on 2-D points not reported clearly: ${rc} ${out} ${err}")
endif()
# export: a compact copy of the run (EMA weights in fp16) that samples; an existing file is
# kept unless --overwrite; a non-checkpoint is refused naming the file.
run(${CLI} export ${WORK}/run ${WORK}/export.pt)
file(SIZE ${WORK}/export.pt export_size)
file(SIZE ${WORK}/run/checkpoints/step_00000004.pt full_size)
math(EXPR limit "${full_size} / 4")
if(NOT export_size LESS limit)
  message(FATAL_ERROR "export.pt is ${export_size} bytes, the checkpoint ${full_size}")
endif()
run(${CLI} sample --checkpoint ${WORK}/export.pt --sampler ddim --steps 5 --n 8 --out ${WORK}/export_grid.png --threads 1)
file(SHA256 ${WORK}/export.pt export_before)
execute_process(COMMAND ${CLI} export ${WORK}/run ${WORK}/export.pt RESULT_VARIABLE rc ERROR_VARIABLE err)
file(SHA256 ${WORK}/export.pt export_after)
if(rc EQUAL 0 OR NOT err MATCHES "already there" OR NOT export_before STREQUAL export_after)
  message(FATAL_ERROR "export over an existing file: ${rc} ${err}")
endif()
run(${CLI} export ${WORK}/run ${WORK}/export.pt --precision bf16 --overwrite)
execute_process(COMMAND ${CLI} export ${WORK}/bad.yaml ${WORK}/bad.pt RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "bad.yaml" OR EXISTS ${WORK}/bad.pt)
  message(FATAL_ERROR "export of a non-checkpoint not reported clearly: ${rc} ${err}")
endif()
# An exported copy has no optimizer state or data position: --resume refuses it by name.
execute_process(COMMAND ${CLI} train ${common} --steps 6 --resume ${WORK}/export.pt
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "export.pt is an exported copy")
  message(FATAL_ERROR "--resume of an exported copy not refused clearly: ${rc} ${err}")
endif()
