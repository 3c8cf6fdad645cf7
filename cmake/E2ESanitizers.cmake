# Sanitizer and fuzzing builds (clang). Included before the libraries so that every target is instrumented.
#   E2E_SANITIZE=ON  ASan + UBSan on everything (scripts/sanitize, build folder build-asan)
#   E2E_FUZZ=ON      libFuzzer coverage + ASan + UBSan on everything, and the harnesses in tests/fuzz
#                    (scripts/fuzz, build folder build-fuzz)
option(E2E_SANITIZE "Build everything with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(E2E_FUZZ "Build the libFuzzer harnesses of tests/fuzz (clang; implies the sanitizers)" OFF)

if(E2E_SANITIZE OR E2E_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "E2E_SANITIZE/E2E_FUZZ need clang (CC=clang CXX=clang++), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  # Any undefined behaviour stops the program (a test or fuzz run fails instead of printing and going on).
  set(E2E_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  if(E2E_FUZZ)
    list(APPEND E2E_SANITIZER_FLAGS -fsanitize=fuzzer-no-link)
  endif()
  add_compile_options(${E2E_SANITIZER_FLAGS})
  add_link_options(-fsanitize=address,undefined)
endif()
