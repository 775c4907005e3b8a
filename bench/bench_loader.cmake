# bench_loader: converter and loader images/s against a resnet18 step (see bench_loader.cpp).
# Included from bench_data.cmake (bench/CMakeLists.txt includes bench_<room>.cmake per room).
if(TARGET lmt_models)
  add_executable(bench_loader ${CMAKE_CURRENT_LIST_DIR}/bench_loader.cpp)
  target_link_libraries(bench_loader PRIVATE lmt::data lmt::models)
  target_compile_options(bench_loader PRIVATE -Wall -Wextra)
endif()
