-- Why a failed or unknown release ended, as data (slipway.Failure as
-- JSON; '' for releases that did not fail and for those that failed
-- before this migration). Both dialects read it as text.

-- +goose Up
ALTER TABLE releases ADD COLUMN failure TEXT NOT NULL DEFAULT '';
