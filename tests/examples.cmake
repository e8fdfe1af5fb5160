# CI runs the README's examples and a small variant of the main job (scripts/main.sh) and checks the
# figures they print: tests/examples_test.py holds each run's arguments and expected ranges. Included
# from examples/CMakeLists.txt, once every example target exists. Label "example": scripts/test.sh
# runs these once (they set their own thread count), not again in its 1-thread pass.
find_package(Python3 COMPONENTS Interpreter)
if(KILN_BUILD_TESTS AND Python3_FOUND)
  # CTest name -> example target (examples_test.py's EXAMPLES key is the CTest name without "example_").
  set(kiln_example_runs
      readme_first_program:readme_first_program readme_keras:readme_keras
      mnist_keras_mlp:mnist_keras_mlp mnist_lenet:mnist_lenet export_onnx:export_onnx
      main_job_small:text_classification)
  foreach(run ${kiln_example_runs})
    string(REPLACE ":" ";" run ${run})
    list(GET run 0 name)
    list(GET run 1 target)
    if(TARGET ${target})
      add_test(NAME example_${name}
               COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/examples_test.py
                       ${PROJECT_SOURCE_DIR} ${name} $<TARGET_FILE:${target}>)
    else()
      # A missing example is a failing test, never a silently shorter suite.
      add_test(NAME example_${name} COMMAND ${CMAKE_COMMAND} -E echo "example target ${target} was not built")
      set_tests_properties(example_${name} PROPERTIES WILL_FAIL TRUE)
    endif()
    set_tests_properties(example_${name} PROPERTIES LABELS example TIMEOUT 900
                         ENVIRONMENT "OPENBLAS_CORETYPE=Haswell")
  endforeach()
endif()
