# reel_add_trace_test(NAME TRACE)
#
# Registers one ctest, trace.NAME, that runs `reel check TRACE`: the trace
# replays in-process and its outcome is compared with the manifest beside it
# (TRACE with .manifest for .reel). A failing check writes its report to
# <build>/trace-reports/ rather than beside the trace in the source tree, so
# the Release and sanitizer builds running at once do not share a file.
function(reel_add_trace_test name trace)
  if(NOT IS_ABSOLUTE "${trace}")
    set(trace "${CMAKE_CURRENT_SOURCE_DIR}/${trace}")
  endif()
  add_test(NAME trace.${name}
           COMMAND reel check --report-dir ${CMAKE_BINARY_DIR}/trace-reports ${trace})
  # The check would fail on it anyway; saying so at configure time is kinder.
  string(REGEX REPLACE "\\.reel$" ".manifest" manifest "${trace}")
  if(NOT EXISTS "${manifest}")
    message(WARNING "reel trace ${trace} has no manifest (${manifest}); its check will fail")
  endif()
  set_tests_properties(trace.${name} PROPERTIES LABELS "trace" TIMEOUT 300)
endfunction()
