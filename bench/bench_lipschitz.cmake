# bench_lipschitz: the cost of the Lipschitz bound in a training step. Included from
# bench/CMakeLists.txt: include(${CMAKE_CURRENT_SOURCE_DIR}/bench_lipschitz.cmake)
add_executable(bench_lipschitz ${CMAKE_CURRENT_LIST_DIR}/bench_lipschitz.cpp)
target_link_libraries(bench_lipschitz PRIVATE lmt::lipschitz)
target_compile_options(bench_lipschitz PRIVATE -Wall -Wextra)
