# bench_data: dataset conversion time and loader throughput / wait time. Included from
# bench/CMakeLists.txt: include(${CMAKE_CURRENT_SOURCE_DIR}/bench_data.cmake)
add_executable(bench_data ${CMAKE_CURRENT_LIST_DIR}/bench_data.cpp)
target_link_libraries(bench_data PRIVATE lmt::data)
target_compile_options(bench_data PRIVATE -Wall -Wextra)
include(${CMAKE_CURRENT_LIST_DIR}/bench_loader.cmake)
