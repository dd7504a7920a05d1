-- The headers of a webhook's answer, kept with each delivery attempt
-- (Akkeris's results show them as last_attempt.response.headers); a JSON
-- object, {} when no answer came.

-- +goose Up
ALTER TABLE hook_results ADD COLUMN response_headers TEXT NOT NULL DEFAULT '{}';

