// Tests arrive with the transfer work.
