// Turning any user string into a safe FTS5 query (filled in with the search work).
#pragma once
