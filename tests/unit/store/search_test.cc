// Tests arrive with the search work.
