# lmt_add_room(NAME SOURCES ... DEPENDS ... [NO_PCH]): one static library per top-level folder
# (NO_PCH: a room that does not use torch, which the precompiled header is made of).
# Public headers live in ROOM/include/lmt/ROOM/ and are included as <lmt/ROOM/x.h>.
set(LMT_WARNINGS -Wall -Wextra)

# The project's torch header set, precompiled once and reused by every target.
if(LMT_PCH AND NOT TARGET lmt_pch)
  add_library(lmt_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
  target_link_libraries(lmt_pch PUBLIC torch)
  target_compile_options(lmt_pch PRIVATE ${LMT_WARNINGS})
  target_precompile_headers(lmt_pch PRIVATE ${PROJECT_SOURCE_DIR}/cmake/lmt_torch.h)
endif()

function(lmt_use_pch target)
  if(LMT_PCH)
    target_precompile_headers(${target} REUSE_FROM lmt_pch)
    # Executables default to -fPIE; GCC only accepts the (-fPIC) PCH with matching flags.
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      target_compile_options(${target} PRIVATE -fPIC)
    endif()
  endif()
endfunction()

function(lmt_add_room name)
  cmake_parse_arguments(ARG "NO_PCH" "" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  add_library(lmt_${name} STATIC ${ARG_SOURCES})
  add_library(lmt::${name} ALIAS lmt_${name})
  target_include_directories(lmt_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(lmt_${name} PUBLIC ${ARG_DEPENDS} PRIVATE ${ARG_PRIVATE_DEPENDS})
  target_compile_options(lmt_${name} PRIVATE ${LMT_WARNINGS})
  set_target_properties(lmt_${name} PROPERTIES EXPORT_NAME ${name})
  if(NOT ARG_NO_PCH)
    lmt_use_pch(lmt_${name})
  endif()
  set_property(GLOBAL APPEND PROPERTY LMT_ROOMS lmt_${name})
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
