// Tests arrive with the graph work.
