#include "store/internal/fts_query.h"
