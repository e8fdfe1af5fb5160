# The Keras-like API's examples (kiln_train), included from examples/CMakeLists.txt when kiln_train exists.
foreach(example mnist_keras_mlp mnist_lenet readme_keras distributed_mnist)
  add_executable(${example} ${CMAKE_CURRENT_SOURCE_DIR}/${example}.cpp)
  target_link_libraries(${example} PRIVATE kiln_train kiln_vision)
  target_compile_definitions(${example} PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endforeach()
