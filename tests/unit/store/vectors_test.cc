// Tests arrive with the vectors work.
