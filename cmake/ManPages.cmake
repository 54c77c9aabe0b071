# The man pages plantd-broker(8), plantd-broker.yaml(5) and plantd-mdp(1).
#
# Included from CMakeLists.txt, it adds the target `man-pages` (part of
# `all`) that builds them into ${CMAKE_BINARY_DIR}/man, each also gzipped as
# Debian installs them, and installs the gzipped ones (component broker).
#
# Run as a script (cmake -P, by that target), it makes them: the templates
# docs/man/*.in are prose written by hand; the lists of keys, flags and
# variables are filled in from `plantd-broker --print-keys man|man-options|
# man-environment`, the broker's one key table, so a page cannot list a key
# the binary does not read or miss one it does.
#   -DPLANTD_BROKER=binary -DSOURCE_DIR=... -DOUTPUT_DIR=...
#   -DPROJECT_VERSION=... -DPLANTD_MAN_DATE=YYYY-MM-DD

set(PLANTD_MAN_PAGES plantd-broker.8 plantd-broker.yaml.5 plantd-mdp.1)

if(CMAKE_SCRIPT_MODE_FILE)
  function(print_keys format out_var)
    execute_process(COMMAND ${PLANTD_BROKER} --print-keys ${format}
      OUTPUT_VARIABLE text RESULT_VARIABLE rc ERROR_VARIABLE err)
    if(NOT rc EQUAL 0 OR text STREQUAL "")
      message(FATAL_ERROR "plantd-broker --print-keys ${format} failed (${rc}): ${err}")
    endif()
    string(REGEX REPLACE "\n$" "" text "${text}")
    set(${out_var} "${text}" PARENT_SCOPE)
  endfunction()
  print_keys(man PLANTD_MAN_KEYS)
  print_keys(man-options PLANTD_MAN_OPTIONS)
  print_keys(man-environment PLANTD_MAN_ENVIRONMENT)

  file(MAKE_DIRECTORY ${OUTPUT_DIR})
  foreach(page ${PLANTD_MAN_PAGES})
    configure_file(${SOURCE_DIR}/docs/man/${page}.in ${OUTPUT_DIR}/${page} @ONLY)
    # -n: no name or time stamp in the .gz, so the package is reproducible.
    execute_process(COMMAND gzip -9 -n -c ${OUTPUT_DIR}/${page}
      OUTPUT_FILE ${OUTPUT_DIR}/${page}.gz RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "gzip ${page} failed")
    endif()
  endforeach()
  return()
endif()

# The date on the pages is that of the commit built (SOURCE_DATE_EPOCH when
# set), not of the build, so rebuilding the same source gives the same pages.
string(TIMESTAMP PLANTD_MAN_DATE "%Y-%m-%d" UTC)
if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})
  execute_process(COMMAND git log -1 --format=%cs
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE git_date
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(git_date)
    set(PLANTD_MAN_DATE ${git_date})
  endif()
endif()

set(PLANTD_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(man_outputs "")
set(man_templates "")
foreach(page ${PLANTD_MAN_PAGES})
  list(APPEND man_outputs ${PLANTD_MAN_DIR}/${page} ${PLANTD_MAN_DIR}/${page}.gz)
  list(APPEND man_templates ${CMAKE_SOURCE_DIR}/docs/man/${page}.in)
endforeach()
add_custom_command(OUTPUT ${man_outputs}
  COMMAND ${CMAKE_COMMAND} -DPLANTD_BROKER=$<TARGET_FILE:plantd-broker>
          -DSOURCE_DIR=${CMAKE_SOURCE_DIR} -DOUTPUT_DIR=${PLANTD_MAN_DIR}
          -DPROJECT_VERSION=${PROJECT_VERSION} -DPLANTD_MAN_DATE=${PLANTD_MAN_DATE}
          -P ${CMAKE_CURRENT_LIST_FILE}
  DEPENDS plantd-broker ${man_templates} ${CMAKE_CURRENT_LIST_FILE}
  COMMENT "Generating the man pages from the key table"
  VERBATIM)
add_custom_target(man-pages ALL DEPENDS ${man_outputs})

foreach(page ${PLANTD_MAN_PAGES})
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${PLANTD_MAN_DIR}/${page}.gz
    DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT broker)
endforeach()
