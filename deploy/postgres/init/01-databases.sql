-- Runs once, on the first start of an empty PostgreSQL volume (docker-entrypoint-initdb.d),
-- as the role POSTGRES_USER ("khaibao"), which owns the five databases.
-- One database per service: a service never reads another service's tables.
CREATE DATABASE khaibao_intake;
CREATE DATABASE khaibao_provisioning;
CREATE DATABASE khaibao_declaration;
CREATE DATABASE khaibao_notification;
CREATE DATABASE khaibao_reporting;
