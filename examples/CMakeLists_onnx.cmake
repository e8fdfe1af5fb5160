# ONNX export example (kiln_onnx), included from examples/CMakeLists.txt.
if(TARGET kiln_onnx AND TARGET kiln_vision)
  add_executable(export_onnx ${CMAKE_CURRENT_SOURCE_DIR}/export_onnx.cpp)
  target_link_libraries(export_onnx PRIVATE kiln)
  target_compile_definitions(export_onnx PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
# ONNX import example: a PyTorch-exported CNN fine-tuned on Fashion-MNIST and exported again.
if(TARGET kiln_onnx AND TARGET kiln_vision)
  add_executable(import_onnx ${CMAKE_CURRENT_SOURCE_DIR}/import_onnx.cpp)
  target_link_libraries(import_onnx PRIVATE kiln)
  target_compile_definitions(import_onnx PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
