# Finds every external dependency once; rooms link the imported targets.
find_package(Torch REQUIRED)
message(STATUS "lmt: LibTorch ${Torch_VERSION} from ${TORCH_INSTALL_PREFIX}")
# The torch wheels' libtorch.so exports its own copy of std::filesystem (remove_all, permissions,
# current_path, ...), and its remove_all jumps to address 0: every binary that called
# std::filesystem::remove_all segfaulted in the CUDA-wheel build (77 of 352 unit tests). The
# dynamic linker takes the first definition in DT_NEEDED order, and the compiler driver adds
# libstdc++ last, so name it before every library: its definitions win, for libtorch's calls too.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  add_link_options("SHELL:-Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state")
endif()
find_package(MPI REQUIRED COMPONENTS C)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Boost REQUIRED COMPONENTS program_options)
find_package(Threads REQUIRED)
find_package(ZLIB REQUIRED)

# HDF5 as one imported target (FindHDF5 only gives variables on CMake < 3.19).
# Installed as lmt::hdf5, which links hdf5::hdf5 (lmtConfig.cmake finds HDF5 again and makes
# that target on CMake < 3.19), so the package carries no build machine's paths.
if(NOT TARGET lmt_hdf5)
  add_library(lmt_hdf5 INTERFACE)
  target_include_directories(lmt_hdf5 SYSTEM INTERFACE
    "$<BUILD_INTERFACE:${HDF5_C_INCLUDE_DIRS}>" "$<BUILD_INTERFACE:${HDF5_INCLUDE_DIRS}>")
  target_link_libraries(lmt_hdf5 INTERFACE
    "$<BUILD_INTERFACE:${HDF5_C_LIBRARIES}>" "$<INSTALL_INTERFACE:hdf5::hdf5>")
  target_compile_definitions(lmt_hdf5 INTERFACE ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})
  set_target_properties(lmt_hdf5 PROPERTIES EXPORT_NAME hdf5)
endif()

# NCCL: compiled when CUDA's runtime and NCCL are both found (here under /usr/local/cuda).
set(LMT_HAVE_NCCL OFF)
if(LMT_WITH_NCCL)
  find_package(CUDAToolkit QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include $ENV{NCCL_HOME}/include)
  # (a wheel's nvidia-nccl-cu* ships only libnccl.so.2: NCCL_HOME=.../site-packages/nvidia/nccl)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 $ENV{NCCL_HOME}/lib)
  if(CUDAToolkit_FOUND AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(LMT_HAVE_NCCL ON)
    message(STATUS "lmt: NCCL communicator enabled (${NCCL_LIBRARY})")
  else()
    message(STATUS "lmt: NCCL communicator disabled (CUDA toolkit or NCCL not found)")
  endif()
endif()
