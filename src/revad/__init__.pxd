# Marks src/revad as the Cython package revad, so that .pxd files resolve as revad.*
