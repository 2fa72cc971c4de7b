#include "store/internal/vector_cache.h"
