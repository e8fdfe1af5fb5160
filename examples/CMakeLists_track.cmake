# Experiment tracking (kiln_track): a real training run recorded with callbacks::Tracking.
if(TARGET kiln_track AND TARGET kiln_vision)
  add_executable(track_mnist ${CMAKE_CURRENT_SOURCE_DIR}/track_mnist.cpp)
  target_link_libraries(track_mnist PRIVATE kiln_track kiln_vision)
  target_compile_definitions(track_mnist PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
