# Copies the shared libraries that a GPU machine with only the CUDA toolkit lacks (cJSON, libmatio and
# HDF5 with their own dependencies, libgomp, ...) next to the binary, in DEST, for LPC_STATIC_DEPS
# builds (RPATH $ORIGIN/lib). The C library, the compiler runtime and the NVIDIA libraries stay: the
# GPU machine has its own.
# usage: cmake -DBINARY=path -DDEST=dir -P bundle_libs.cmake
execute_process(COMMAND ldd ${BINARY} OUTPUT_VARIABLE deps RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ldd ${BINARY} failed")
endif()
file(MAKE_DIRECTORY ${DEST})
string(REPLACE "\n" ";" lines "${deps}")
foreach(line IN LISTS lines)
  if(line MATCHES "^[ \t]*([^ ]+) => (/[^ ]+)")
    set(name ${CMAKE_MATCH_1})
    set(path ${CMAKE_MATCH_2})
    if(name MATCHES "^(libc|libm|libdl|librt|libpthread|ld-linux|libgcc_s|libstdc\\+\\+|libcuda|libcudart|libcublas(Lt)?|libcudnn|libcurand|libnvrtc|libnvJitLink|libz)\\.so")
      continue()
    endif()
    file(COPY_FILE ${path} ${DEST}/${name} ONLY_IF_DIFFERENT)
  endif()
endforeach()
