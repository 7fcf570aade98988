// Starts GraphiQL on the hub's page: queries and mutations over HTTP, subscriptions over the
// graphql-transport-ws WebSocket on the same URL. Served as a file so the page's CSP can
// forbid inline scripts.
(function () {
  var root = document.getElementById('graphiql');
  var http = new URL(root.dataset.endpoint, window.location.href);
  var ws = new URL(http.href);
  ws.protocol = http.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({ url: http.href, subscriptionUrl: ws.href });
  var defaultQuery = [
    '# Welcome to Junction. Press the run button (or Ctrl-Enter) to run a query.',
    '# The Docs button (top left) lists every type and field this hub serves.',
    '',
    'query Hub {',
    '  hub {',
    '    version',
    '    connectors { name type healthy breaker { state } }',
    '  }',
    '}',
    '',
  ].join('\n');
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: false,
    }),
  );
})();
