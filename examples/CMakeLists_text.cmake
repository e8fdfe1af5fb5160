# Text examples (kiln_text): included from examples/CMakeLists.txt when kiln_text exists.
if(TARGET kiln_text)
  add_executable(text_classification ${CMAKE_CURRENT_SOURCE_DIR}/text_classification.cpp)
  target_link_libraries(text_classification PRIVATE kiln_text)
  target_compile_definitions(text_classification PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_executable(sentence_similarity ${CMAKE_CURRENT_SOURCE_DIR}/sentence_similarity.cpp)
  target_link_libraries(sentence_similarity PRIVATE kiln_text)
  target_compile_definitions(sentence_similarity PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
