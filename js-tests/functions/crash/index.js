// Kills its own worker process in the middle of a call.
exports.main = async () => {
  process.exit(3);
};
