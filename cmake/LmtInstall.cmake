# Installing lmt as a CMake package: the public headers (lmt/ROOM/*.h, by lmt_add_room), one
# static library per room, the targets lmt::ROOM and lmt::lmt, and lmtConfig.cmake.
# Included at the end of the top-level CMakeLists.txt, once every room has been added.
include(CMakePackageConfigHelpers)

set(LMT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/lmt
  CACHE STRING "Where lmtConfig.cmake is installed, relative to the prefix")
get_property(lmt_rooms GLOBAL PROPERTY LMT_ROOMS)

# lmt::lmt: every room in one target, for users who want the whole library.
add_library(lmt_all INTERFACE)
add_library(lmt::lmt ALIAS lmt_all)
target_link_libraries(lmt_all INTERFACE ${lmt_rooms})
set_target_properties(lmt_all PROPERTIES EXPORT_NAME lmt)

# The public headers need C++17 (nested namespaces, std::optional): users get it from us.
foreach(room lmt_all ${lmt_rooms})
  set_property(TARGET ${room} APPEND PROPERTY INTERFACE_COMPILE_FEATURES cxx_std_17)
endforeach()

install(TARGETS ${lmt_rooms} lmt_all lmt_hdf5 EXPORT lmtTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT lmtTargets NAMESPACE lmt:: DESTINATION ${LMT_INSTALL_CMAKEDIR})

# The prefix holding the LibTorch libraries the build linked (a torch wheel's .../torch); empty
# for a system LibTorch (Debian's, in /usr/lib/<arch>), which the default search finds anyway.
set(LMT_TORCH_PREFIX "")
get_filename_component(_lmt_torch_libdir "${TORCH_LIBRARY}" DIRECTORY)
get_filename_component(_lmt_torch_libdir_name "${_lmt_torch_libdir}" NAME)
if(_lmt_torch_libdir_name STREQUAL "lib")
  get_filename_component(LMT_TORCH_PREFIX "${_lmt_torch_libdir}" DIRECTORY)
endif()

# The installed lmt executable finds libraries outside the system paths (CUDA's, a torch
# wheel's) as it did in the build tree. The wheel's libtorch_cuda.so comes in through a
# -Wl,--no-as-needed flag, whose directory the link path does not carry: named here.
if(TARGET lmt_cli)
  set_target_properties(lmt_cli PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
  if(LMT_TORCH_PREFIX)
    set_property(TARGET lmt_cli APPEND PROPERTY INSTALL_RPATH "${_lmt_torch_libdir}")
  endif()
endif()

# What lmtConfig.cmake needs to find the same dependencies the build used.
string(REPLACE "lmt_" "" LMT_PACKAGE_ROOMS "${lmt_rooms}")
get_filename_component(LMT_CUDA_ROOT "${CUDAToolkit_BIN_DIR}" DIRECTORY)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/lmtConfig.cmake.in
  ${PROJECT_BINARY_DIR}/lmtConfig.cmake
  INSTALL_DESTINATION ${LMT_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lmtConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lmtConfig.cmake ${PROJECT_BINARY_DIR}/lmtConfigVersion.cmake
  DESTINATION ${LMT_INSTALL_CMAKEDIR})
