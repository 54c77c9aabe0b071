# Debian packages, built by CPack (`make package`):
#
#   plantd-broker   the broker and plantd-mdp, the systemd unit, the
#                   conffile /etc/plantd/broker.yaml, the system user
#                   (sysusers.d) and the man pages    (component broker)
#   libplantd-dev   libplantd: headers, the static library, the CMake
#                   package and plantd.pc              (component dev)
#
# The files that only a system install wants (the unit, /etc, sysusers.d)
# go to absolute paths, so they are installed only with
# PLANTD_INSTALL_SYSTEM_FILES=ON (`make package` sets it, with the prefix
# /usr): a `cmake --install` to another prefix never writes into /etc.
# docs/packaging.md says what is in each package and why.

option(PLANTD_INSTALL_SYSTEM_FILES
  "Install the systemd unit, /etc/plantd/broker.yaml and the sysusers.d user (the Debian package)"
  OFF)
set(PLANTD_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH "Where the systemd unit goes")
set(PLANTD_SYSUSERS_DIR "/usr/lib/sysusers.d" CACHE PATH "Where the sysusers.d entry goes")

if(PLANTD_INSTALL_SYSTEM_FILES)
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/plantd-broker.service
    DESTINATION ${PLANTD_SYSTEMD_UNIT_DIR} COMPONENT broker)
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/plantd-broker.sysusers
    DESTINATION ${PLANTD_SYSUSERS_DIR} RENAME plantd-broker.conf COMPONENT broker)
  install(FILES ${CMAKE_SOURCE_DIR}/configs/system.yaml
    DESTINATION /etc/plantd RENAME broker.yaml COMPONENT broker)
  # As dh_strip does for a static library: without its debug sections
  # (CPACK_STRIP_FILES strips only the programs): 7 MB become 0.3 MB.
  if(CMAKE_STRIP)
    install(CODE "execute_process(COMMAND ${CMAKE_STRIP} --strip-debug --enable-deterministic-archives
      \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/libplantd.a\" COMMAND_ERROR_IS_FATAL ANY)"
      COMPONENT dev)
  endif()
endif()

# Debian policy: a copyright file and the documentation under
# /usr/share/doc/PACKAGE.
install(FILES ${CMAKE_SOURCE_DIR}/cmake/debian/copyright
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/plantd-broker COMPONENT broker)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/operations.md
              ${CMAKE_SOURCE_DIR}/docs/configuration.md ${CMAKE_SOURCE_DIR}/docs/durability.md
              ${CMAKE_SOURCE_DIR}/docs/packaging.md
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/plantd-broker COMPONENT broker)
install(FILES ${CMAKE_SOURCE_DIR}/cmake/debian/copyright
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/libplantd-dev COMPONENT dev)
# Each package's changelog.Debian.gz (gzip -n: reproducible).
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
configure_file(${CMAKE_SOURCE_DIR}/cmake/debian/changelog.in
  ${CMAKE_BINARY_DIR}/debian/changelog.Debian @ONLY)
execute_process(COMMAND gzip -9 -n -c ${CMAKE_BINARY_DIR}/debian/changelog.Debian
  OUTPUT_FILE ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/plantd-broker COMPONENT broker)
install(FILES ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/libplantd-dev COMPONENT dev)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME plantd-broker)
set(CPACK_PACKAGE_VENDOR plantd)
set(CPACK_PACKAGE_CONTACT "plantd-broker maintainers <maintainers@plantd.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# Absolute destinations (/etc, /lib/systemd) go under the staging directory.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL broker dev)
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from the binaries themselves (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_BROKER_PACKAGE_NAME plantd-broker)
set(CPACK_DEBIAN_BROKER_PACKAGE_SECTION net)
set(CPACK_COMPONENT_BROKER_DESCRIPTION
  "Majordomo (ZeroMQ MDP) request-reply broker and pub/sub buses for plantd
plantd-broker routes requests from clients to workers by service name over
the ZeroMQ Majordomo protocol (MDP/0.1 and 0.2, with the zguide and
majortomo dialects), keeps durable requests (9/TSP Titanic) in SQLite, and
runs publish/subscribe buses. It serves health checks and Prometheus
metrics over HTTP and runs as a sandboxed Type=notify systemd service with
a watchdog.
This package holds the broker, the plantd-mdp command-line client, the
systemd unit, the configuration /etc/plantd/broker.yaml and the system user
plantd-broker.")
set(CPACK_DEBIAN_BROKER_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/cmake/debian/conffiles
  ${CMAKE_SOURCE_DIR}/cmake/debian/postinst
  ${CMAKE_SOURCE_DIR}/cmake/debian/prerm
  ${CMAKE_SOURCE_DIR}/cmake/debian/postrm)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libplantd-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# plantd.pc requires libzmq, and the CMake package finds it with pkg-config.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libzmq3-dev, pkgconf | pkg-config")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "plantd Majordomo client, worker and bus library (development files)
libplantd is the C++20 library plantd services are written against: a
synchronous and an asynchronous Majordomo client, a worker, durable
(Titanic) requests and bus publishers and subscribers, without socket code.
This package holds the headers, the static library, a CMake package
(find_package(plantd)) and a pkg-config file (plantd) that finds its prefix
from where it lies.")

include(CPack)
