// Returns the call's data and the env it ran in.
exports.main = async (event, context) => {
  const { userInfo, ...data } = event;
  return { data, env: context.namespace, hasOpenId: typeof userInfo?.openId === 'string' };
};
