// mm_instances.cpp - the one instantiation of the mm model for each format the mm suites run
// over (mm_world.hpp declares them extern in every other file).
#include <type_traits>

#include "mm_world.hpp"

#define HPT_MM_INSTANTIATE(F) template class HPT_MM_OF(F);
HPT_MM_FORMATS(HPT_MM_INSTANTIATE)

// The preprocessor's list is the typed suites' list, in the same order.
#define HPT_MM_TYPE(F) , F
static_assert(std::is_same_v<mm_world::GeometryFormats,
                             ::testing::Types<mm_world::RiscvSv39Rsw, hugepte::fake::FakeFormat
                                                  HPT_MM_GEOMETRIES(HPT_MM_TYPE)>>,
              "HPT_MM_GEOMETRIES (mm_world.hpp) must list typed_formats.hpp's GeometryFormats");
