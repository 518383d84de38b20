package io.kvbroker.metrics;

import io.kvbroker.metrics.BoundedHttpServer.Request;
import io.kvbroker.metrics.BoundedHttpServer.Response;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.prometheus.metrics.exporter.common.PrometheusHttpExchange;
import io.prometheus.metrics.exporter.common.PrometheusHttpRequest;
import io.prometheus.metrics.exporter.common.PrometheusHttpResponse;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.Map;

/** One scrape as the Prometheus client's scrape handler sees an HTTP exchange: a request in, a buffered answer out. */
final class ScrapeExchange implements PrometheusHttpExchange {
    private final Request request;
    private final Map<String, String> headers = new LinkedHashMap<>();
    private final ByteArrayOutputStream body = new ByteArrayOutputStream();
    private int status = 500;

    ScrapeExchange(Request request) {
        this.request = request;
    }

    Response response() {
        return new Response(status, headers, body.toByteArray());
    }

    @Override
    public PrometheusHttpRequest getRequest() {
        QueryStringDecoder uri = new QueryStringDecoder(request.uri());
        return new PrometheusHttpRequest() {
            @Override
            public String getQueryString() {
                return uri.rawQuery();
            }

            @Override
            public Enumeration<String> getHeaders(String name) {
                return Collections.enumeration(request.headers().getAll(name));
            }

            @Override
            public String getMethod() {
                return request.method();
            }

            @Override
            public String getRequestPath() {
                return uri.path();
            }
        };
    }

    @Override
    public PrometheusHttpResponse getResponse() {
        return new PrometheusHttpResponse() {
            @Override
            public void setHeader(String name, String value) {
                headers.put(name, value);
            }

            @Override
            public OutputStream sendHeadersAndGetBody(int statusCode, int contentLength) {
                status = statusCode;
                return body;
            }
        };
    }

    @Override
    public void handleException(IOException e) throws IOException {
        throw e;
    }

    @Override
    public void handleException(RuntimeException e) {
        throw e;
    }

    @Override
    public void close() {
    }
}
