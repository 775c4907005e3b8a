# bench_allreduce: bus bandwidth of GradSync's bucketed all-reduce vs one raw MPI_Allreduce on
# ResNet-18's gradient set, and how much of an async all-reduce hides behind computation.
add_executable(bench_allreduce ${CMAKE_CURRENT_LIST_DIR}/bench_allreduce.cpp)
target_link_libraries(bench_allreduce PRIVATE lmt::dist)
target_compile_options(bench_allreduce PRIVATE -Wall -Wextra)
