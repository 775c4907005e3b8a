# bench_lmt: LMT step time / cross-entropy step time (lmt-mnist, resnet18) with the trainer's
# objectives, and the share of power iteration and of L's backward. Included when lmt_train is.
add_executable(bench_lmt ${CMAKE_CURRENT_LIST_DIR}/bench_lmt.cpp)
target_link_libraries(bench_lmt PRIVATE lmt::train lmt::models lmt::lipschitz)
target_compile_options(bench_lmt PRIVATE -Wall -Wextra)
