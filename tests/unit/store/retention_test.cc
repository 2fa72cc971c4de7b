// Tests arrive with the retention work.
