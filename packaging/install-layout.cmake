# Runs at install time (`cmake --install`, and cpack for the .deb), when the prefix is finally
# known, so one build installs right under /usr/local, /usr or a scratch prefix. GNUInstallDirs'
# rule for the configuration folder (/usr -> /etc, not /usr/etc) is applied here to the prefix
# actually used; at configure time it would be applied to the configure-time prefix.
#
# Set by packaging/CMakeLists.txt: MODELPULSE_SOURCE_ROOT, MODELPULSE_PACKAGING_BINARY_DIR,
# MODELPULSE_BINDIR (relative), MODELPULSE_DOCDIR (relative), MODELPULSE_SYSTEMD_UNIT_DIR (where
# systemd looks for packaged units).

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" OR CMAKE_INSTALL_PREFIX STREQUAL "/")
  set(config_dir "/etc/modelpulse")
  set(unit_dir "${MODELPULSE_SYSTEMD_UNIT_DIR}")
else()
  set(config_dir "${CMAKE_INSTALL_PREFIX}/etc/modelpulse")
  # systemd also reads /usr/local/lib/systemd/system; elsewhere, link or copy the unit.
  set(unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
string(REGEX REPLACE "/+$" "" prefix "${CMAKE_INSTALL_PREFIX}")
set(MODELPULSE_BIN "${prefix}/${MODELPULSE_BINDIR}/modelpulse")
set(MODELPULSE_CONFIG_DIR "${config_dir}")

# One staging folder per destination: cpack and a `cmake --install --prefix` may run at once.
string(MD5 destination "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
set(staging "${MODELPULSE_PACKAGING_BINARY_DIR}/install-staging/${destination}")
file(MAKE_DIRECTORY "${staging}")
configure_file("${MODELPULSE_SOURCE_ROOT}/config/systemd/modelpulse.service.in"
               "${staging}/modelpulse.service" @ONLY)
# The example configuration becomes the configuration: it checks, and needs only keys to run.
configure_file("${MODELPULSE_SOURCE_ROOT}/config/example.yaml" "${staging}/modelpulse.yml"
               COPYONLY)
file(GLOB rule_files "${MODELPULSE_SOURCE_ROOT}/config/rules/*.yaml")
# Debian wants the changelog compressed with -9n (no name or timestamp: reproducible).
execute_process(
  COMMAND gzip -9nc "${MODELPULSE_PACKAGING_BINARY_DIR}/changelog"
  OUTPUT_FILE "${staging}/changelog.gz" COMMAND_ERROR_IS_FATAL ANY)

file(INSTALL DESTINATION "${config_dir}" TYPE FILE FILES "${staging}/modelpulse.yml")
file(INSTALL DESTINATION "${config_dir}/rules" TYPE FILE FILES ${rule_files})
file(INSTALL DESTINATION "${unit_dir}" TYPE FILE FILES "${staging}/modelpulse.service")
file(INSTALL DESTINATION "${prefix}/${MODELPULSE_DOCDIR}" TYPE FILE
     FILES "${MODELPULSE_SOURCE_ROOT}/packaging/debian/copyright" "${staging}/changelog.gz")
file(INSTALL DESTINATION "${prefix}/${MODELPULSE_DOCDIR}/examples" TYPE FILE
     FILES "${MODELPULSE_SOURCE_ROOT}/config/clouds.yaml")
# The Grafana dashboards and their provisioning examples (README "Grafana"); generate.py stays in
# the source tree.
file(GLOB grafana_dashboards "${MODELPULSE_SOURCE_ROOT}/config/grafana/*.json")
file(INSTALL DESTINATION "${prefix}/${MODELPULSE_DOCDIR}/examples/grafana" TYPE FILE
     FILES ${grafana_dashboards})
file(INSTALL DESTINATION "${prefix}/${MODELPULSE_DOCDIR}/examples/grafana" TYPE DIRECTORY
     FILES "${MODELPULSE_SOURCE_ROOT}/config/grafana/provisioning")
