// Answers after `event.ms` milliseconds (for abort and timeout tests).
exports.main = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, event.ms ?? 2000));
  return { slept: event.ms ?? 2000 };
};
