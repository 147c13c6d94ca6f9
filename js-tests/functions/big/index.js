// Returns a large, checkable result: event.size characters (default 800 KiB) of a repeating pattern.
exports.main = async (event) => {
  const size = event.size ?? 800 * 1024;
  return { size, text: 'abcdefghij'.repeat(Math.ceil(size / 10)).slice(0, size) };
};
