# bench_step: step time of the real training loop (Trainer) on 1..N ranks, overlap on/off,
# pi-sync average/split; bench/bench_step.sh runs it beside the Python PyTorch reference
# (bench/python/). Included from bench/CMakeLists.txt when the train room is built.
add_executable(bench_step ${CMAKE_CURRENT_LIST_DIR}/bench_step.cpp)
target_link_libraries(bench_step PRIVATE lmt::train lmt::data lmt::dist)
target_compile_options(bench_step PRIVATE -Wall -Wextra)
lmt_use_pch(bench_step)
