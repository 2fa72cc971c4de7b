// Tests arrive with the open work.
