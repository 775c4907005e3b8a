# bench_models: parameter counts, bounds at initialisation and step throughput of the model zoo,
# and a certification pass over a trained model file. Included from bench/CMakeLists.txt.
add_executable(bench_models ${CMAKE_CURRENT_LIST_DIR}/bench_models.cpp)
target_link_libraries(bench_models PRIVATE lmt::models lmt::data)
target_compile_options(bench_models PRIVATE -Wall -Wextra)
