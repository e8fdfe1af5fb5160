# kiln_vision's examples, included from examples/CMakeLists.txt.
if(TARGET kiln_vision)
  add_executable(image_classification ${CMAKE_CURRENT_SOURCE_DIR}/image_classification.cpp)
  target_link_libraries(image_classification PRIVATE kiln_vision)
  target_compile_definitions(image_classification PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
