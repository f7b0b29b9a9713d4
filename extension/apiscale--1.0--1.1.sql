/* extension/apiscale--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION apiscale UPDATE TO '1.1'" to load this file. \quit

--
-- apiscale--1.0.sql is frozen: databases on 1.0 exist.  Everything new or
-- changed in 1.1 is here, and a fresh CREATE EXTENSION runs 1.0 then this
-- script (there is no full 1.1 script), so both paths end in the same
-- objects; sql/upgrade.sql checks it.  Replace objects with CREATE OR
-- REPLACE, which keeps their privileges and comments.
--
