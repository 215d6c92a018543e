// Container images as the card carries them: one OCI image layout per image, in a tar archive
// that `ctr -n k8s.io images import` reads (docs/images.md).
#pragma once

#include <string>

#include "plan/images.h"

namespace pibake {

// The version of the bytes write_oci_archive makes for an image: part of the name the cache keeps
// an archive under (fetch_images), so a pibake that lays archives out differently makes new ones.
// Raise it with any change to the archive's content.
inline constexpr int kOciArchiveFormat = 1;

// Writes `image` (its manifest and blobs, read from the cache) to `dest` as a tar archive holding
// an OCI image layout (OCI image spec, "image-layout"): `oci-layout`, `index.json` naming the
// linux/arm64 manifest with the annotations containerd's importer reads
// (`io.containerd.image.name` = the full reference, `org.opencontainers.image.ref.name` = its
// tag), and `blobs/sha256/<hex>` for the manifest, the config and every layer, copied as they are
// (compressed layers stay compressed). Entries have mode 0644 and time 0, so the same image
// always gives the same bytes. Written to a temporary file and renamed; throws pibake::Error on a
// write error (nothing left under `dest`).
void write_oci_archive(const PulledImage& image, const std::string& dest);

}  // namespace pibake
