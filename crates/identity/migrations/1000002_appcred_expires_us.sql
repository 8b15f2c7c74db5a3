-- Application credentials keep their expiry to the microsecond, as Keystone does (it
-- shows `expires_at` back exactly as it was given). expires_at (seconds) stays for checks.
ALTER TABLE application_credentials ADD COLUMN expires_at_us BIGINT;
UPDATE application_credentials SET expires_at_us = expires_at * 1000000 WHERE expires_at IS NOT NULL;
