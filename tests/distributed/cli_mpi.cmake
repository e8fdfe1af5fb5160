# `kiln text-classification train` under mpirun -np 2: the job succeeds, rank 0 alone prints the
# progress, writes the model directory and records one tracking run (a fresh store that both ranks
# would otherwise create at once), and that directory loads (the CLI's evaluate reads it).
# Run by ctest `distributed_cli` with -DMPIRUN=... -DKILN=... -DDATA=... -DOUT=...
file(REMOVE_RECURSE ${OUT} ${OUT}_runs)
execute_process(
  COMMAND ${MPIRUN} -np 2 --oversubscribe --bind-to none ${KILN} --track ${OUT}_runs
          text-classification train
          --data ${DATA} --label-col Label --text-col Text --out ${OUT} --epochs 2 --batch-size 8
          --max-length 16 --seed 1 --verbose 2
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 240)
set(report "exit: ${rc}\nstdout:\n${out}\nstderr:\n${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun failed\n${report}")
endif()
string(REGEX MATCHALL "saved the model to" saved "${out}")
string(REGEX MATCHALL "Epoch 2/2" epoch2 "${out}")
list(LENGTH saved n_saved)
list(LENGTH epoch2 n_epoch2)
if(NOT n_saved EQUAL 1 OR NOT n_epoch2 EQUAL 1)
  message(FATAL_ERROR "expected one 'saved the model' and one 'Epoch 2/2' (rank 0 only), got "
                      "${n_saved} and ${n_epoch2}\n${report}")
endif()
if(NOT EXISTS ${OUT}/model.safetensors OR NOT EXISTS ${OUT}/config.json)
  message(FATAL_ERROR "no model written to ${OUT}\n${report}")
endif()
execute_process(COMMAND ${KILN} --track ${OUT}_runs runs list --json
                RESULT_VARIABLE rc OUTPUT_VARIABLE runs ERROR_VARIABLE err TIMEOUT 60)
string(REGEX MATCHALL "\"status\": ?\"finished\"" finished "${runs}")
string(REGEX MATCHALL "[{,]\"id\": ?\"" ids "${runs}")
list(LENGTH finished n_finished)
list(LENGTH ids n_ids)
if(NOT rc EQUAL 0 OR NOT n_ids EQUAL 1 OR NOT n_finished EQUAL 1)
  message(FATAL_ERROR "expected one finished run (rank 0's) in ${OUT}_runs, got ${n_ids} run(s), "
                      "${n_finished} finished (${rc})\n${runs}\n${err}\n${report}")
endif()
execute_process(COMMAND ${KILN} --no-track text-classification evaluate --model ${OUT} --data ${DATA} --json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc EQUAL 0 OR NOT out MATCHES "\"accuracy\": [0-9.]+")
  message(FATAL_ERROR "evaluate of the model written under mpirun failed (${rc})\n${out}\n${err}")
endif()
file(REMOVE_RECURSE ${OUT} ${OUT}_runs)
