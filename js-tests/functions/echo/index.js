// Echoes the call's data and what the runtime told the function about the call.
exports.main = async (event, context) => {
  const { userInfo, ...data } = event;
  return {
    data,
    userInfo,
    env: context.namespace,
    functionName: context.function_name,
    requestId: context.request_id,
  };
};
