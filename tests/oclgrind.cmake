# Every kernel variant under Oclgrind (label oclgrind): test_oclgrind_shapes' small ragged forwards
# through tests/oclgrind/run.sh, which fails on any report but the proven false positives in
# tests/oclgrind/exceptions.txt, once per tuning file and once on the built-in plan. Oclgrind is
# an OpenCL platform of its own (its wrapper preloads its runtime, so it is the only one the
# program sees); MHFA_DEVICE names it, so that a run that missed it fails. MHFA_OCLGRIND_COVERS
# lists what each run's forwards must reach; MHFA_OCLGRIND_TESTS splits the emulated tensor-core
# variant, slow under Oclgrind, into two runs that ctest -j2 takes side by side.
mhfa_test(test_oclgrind_shapes test_oclgrind_shapes.c)
if(MHFA_WITH_CLBLAST)
  target_compile_definitions(test_oclgrind_shapes PRIVATE MHFA_HAVE_CLBLAST)
endif()

find_program(MHFA_OCLGRIND oclgrind)
if(NOT MHFA_OCLGRIND)
  message(STATUS "oclgrind not found: the oclgrind tests are not added")
elseif(MHFA_SANITIZE)
  # A sanitizer's runtime must come first in the process; Oclgrind's is preloaded before it.
  message(STATUS "MHFA_SANITIZE is set: the oclgrind tests are not added")
else()
  set(run ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind/run.sh)
  # The checker itself: a program with one fault of each kind must be counted as five reports.
  add_executable(oclgrind_canary oclgrind/canary.c)
  target_link_libraries(oclgrind_canary PRIVATE OpenCL::OpenCL)
  add_test(NAME oclgrind_canary COMMAND bash ${run} $<TARGET_FILE:oclgrind_canary>)
  set_tests_properties(oclgrind_canary PROPERTIES LABELS oclgrind TIMEOUT 120
    PASS_REGULAR_EXPRESSION "run\\.sh: 5 Oclgrind reports \\(4 in kernels, 1 API")

  # run name | tuning file (none: the built-in table alone) | tests (all if empty) | must run
  # [| storage type, float32 if none]
  set(runs
    "default||all|projection:vector flash:vector manual:vector decode absorbed"
    "tiled|tiled|all|projection:tiled flash:mma+rows flash:tiled+rows flash:tiled manual:tiled+rows decode"
    "scalar|scalar|all|projection:tiled flash:tiled flash:vector+rows manual:vector+rows decode"
    "vector|vector|all|projection:vector flash:tiled flash:wide manual:wide decode"
    "mma_flash|mma|hd16_flash|projection:mma flash:mma flash:mma+rows"
    "mma_manual|mma|hd16_manual|projection:mma manual:wide+rows"
    "absorbed|absorbed|all|projection:vector absorbed manual:vector"
    "wide|wide|all|projection:tiled flash:wide+rows flash:wide manual:wide+rows decode")
  # Half storage (MHFA_OCLGRIND_DTYPE). Both types on the built-in plan and on the tensor-core
  # kernels (whose fragments and weight splits differ by type); each other plan in one type (the
  # READ and WRITE macros are the only difference between the types), to keep CI's time.
  list(APPEND runs
    "float16_default||all|projection:vector flash:vector manual:vector decode absorbed|float16"
    "bfloat16_default||all|projection:vector flash:vector manual:vector decode absorbed|bfloat16"
    "float16_tiled|tiled|all|projection:tiled flash:tiled+rows flash:tiled manual:tiled+rows decode|float16"
    "bfloat16_scalar|scalar|all|projection:tiled flash:tiled flash:vector+rows manual:vector+rows decode|bfloat16"
    "float16_vector|vector|all|projection:vector flash:tiled flash:wide manual:wide decode|float16"
    "bfloat16_wide|wide|all|projection:tiled flash:wide+rows flash:wide manual:wide+rows decode|bfloat16"
    "float16_mma_flash|mma|hd16_flash|projection:mma flash:mma flash:mma+rows|float16"
    "bfloat16_mma_flash|mma|hd16_flash|projection:mma flash:mma flash:mma+rows|bfloat16")
  if(MHFA_WITH_CLBLAST)
    list(APPEND runs "clblast|clblast|all|projection:clblast flash:vector manual:vector decode")
  endif()
  foreach(entry ${runs})
    string(REPLACE "|" ";" fields "${entry}")
    list(GET fields 0 name)
    list(GET fields 1 variant)
    list(GET fields 2 tests)
    list(GET fields 3 covers)
    set(env "MHFA_DEVICE=oclgrind" "MHFA_OCLGRIND_COVERS=${covers}")
    list(LENGTH fields n_fields)
    if(n_fields GREATER 4)
      list(GET fields 4 dtype)
      list(APPEND env "MHFA_OCLGRIND_DTYPE=${dtype}")
    endif()
    if(variant)
      list(APPEND env "MHFA_TUNING_FILE=${CMAKE_CURRENT_SOURCE_DIR}/tuning/tuning-${variant}.txt")
    else()
      list(APPEND env "MHFA_TUNING_FILE=/dev/null")
    endif()
    if(NOT tests STREQUAL "all")
      list(APPEND env "MHFA_OCLGRIND_TESTS=${tests}")
    endif()
    add_test(NAME oclgrind_${name} COMMAND bash ${run} $<TARGET_FILE:test_oclgrind_shapes>)
    set_tests_properties(oclgrind_${name} PROPERTIES LABELS oclgrind TIMEOUT 600 ENVIRONMENT "${env}")
  endforeach()
endif()
