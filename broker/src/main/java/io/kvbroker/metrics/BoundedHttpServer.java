package io.kvbroker.metrics;

import io.kvbroker.net.ListenFailure;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * Serves small HTTP/1.1 requests on one port so that slow, idle or many clients cannot take it from the probes: each
 * connection has {@link #REQUEST_DEADLINE_MS} to deliver a whole request and {@link #RESPONSE_DEADLINE_MS} to take
 * the answer, carries one request, and at most {@link #MAX_CONNECTIONS} are open (past it, the one that has waited
 * longest for its request is dropped); the listen backlog is {@link #BACKLOG}.
 *
 * <p>Design note: a deadline from accept to the whole request, not a read timeout: a client that sends a byte every
 * few seconds passes any read timeout and holds the connection for ever. One request per connection
 * ({@code Connection: close}) keeps the deadline simple and costs a scraper or a kubelet (which opens a connection
 * per probe anyway) one TCP handshake per scrape. Requests are decoded on one event-loop thread; the handler's future
 * may complete on any thread (scrapes run on their own), so a slow scrape never holds a probe.
 */
final class BoundedHttpServer implements AutoCloseable {
    static final long REQUEST_DEADLINE_MS = 5_000;
    static final long RESPONSE_DEADLINE_MS = 30_000;
    static final int MAX_CONNECTIONS = 64;
    static final int BACKLOG = 1_024;
    private static final int MAX_REQUEST_BYTES = 64 * 1024;

    /** What the handler sees of a request. */
    record Request(String method, String uri, HttpHeaders headers) {
    }

    /** An answer: status, headers (Content-Length and Connection are set here), body. */
    record Response(int status, Map<String, String> headers, byte[] body) {
        static Response text(int status, String body) {
            return new Response(status, Map.of("Content-Type", "text/plain; charset=utf-8"),
                    body.getBytes(StandardCharsets.UTF_8));
        }
    }

    private final Function<Request, CompletableFuture<Response>> handler;
    private final EventLoopGroup boss;
    private final EventLoopGroup workers;
    private final AtomicInteger open = new AtomicInteger();
    private final Channel channel;

    /**
     * Binds {@code host:port} and starts serving.
     *
     * @param key the setting that names the port, for the message when it cannot be bound
     * @throws IOException naming {@code key}, the host and the port when the port cannot be bound
     */
    BoundedHttpServer(String key, String host, int port, String threadName,
            Function<Request, CompletableFuture<Response>> handler) throws IOException {
        this.handler = handler;
        boss = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory(threadName + "-accept", true),
                NioIoHandler.newFactory());
        workers = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory(threadName, true),
                NioIoHandler.newFactory());
        ConnectionCap cap = new ConnectionCap();
        ServerBootstrap bootstrap = new ServerBootstrap().group(boss, workers).channel(NioServerSocketChannel.class)
                .option(ChannelOption.SO_BACKLOG, BACKLOG)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel channel) {
                        channel.pipeline().addLast(cap, new HttpServerCodec(),
                                new HttpObjectAggregator(MAX_REQUEST_BYTES), new Deadlines(cap), new Dispatch());
                    }
                });
        ChannelFuture bound = bootstrap.bind(new InetSocketAddress(host, port)).awaitUninterruptibly();
        if (!bound.isSuccess()) {
            close();
            throw new IOException(ListenFailure.message(key, host, port, bound.cause()), bound.cause());
        }
        channel = bound.channel();
    }

    /** The bound port (the chosen one when started with 0). */
    int port() {
        return ((InetSocketAddress) channel.localAddress()).getPort();
    }

    /** Stops listening, closes every connection and stops the threads, within {@code budget}. */
    void stop(Duration budget) {
        if (channel != null) {
            channel.close().awaitUninterruptibly(budget.toMillis() / 2);
        }
        close();
        boss.terminationFuture().awaitUninterruptibly(budget.toMillis() / 2);
        workers.terminationFuture().awaitUninterruptibly(budget.toMillis() / 2);
    }

    @Override
    public void close() {
        boss.shutdownGracefully(0, 100, TimeUnit.MILLISECONDS);
        workers.shutdownGracefully(0, 100, TimeUnit.MILLISECONDS);
    }

    /**
     * Keeps at most {@link #MAX_CONNECTIONS} open: at the cap, the connection that has waited longest for its request
     * is closed to make room (a slow client, most likely), or, if every one is being answered, the new one.
     * Runs on the one worker thread, so its set needs no lock.
     */
    @Sharable
    private final class ConnectionCap extends ChannelInboundHandlerAdapter {
        /** Connections still waiting for their request, oldest first. */
        private final Set<Channel> waiting = new LinkedHashSet<>();

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            if (open.incrementAndGet() > MAX_CONNECTIONS) {
                Iterator<Channel> oldest = waiting.iterator();
                if (!oldest.hasNext()) {
                    ctx.close();
                    return;
                }
                Channel evicted = oldest.next();
                oldest.remove();
                evicted.close();
            }
            waiting.add(ctx.channel());
            ctx.fireChannelActive();
        }

        void requestArrived(Channel channel) {
            waiting.remove(channel);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            open.decrementAndGet();
            waiting.remove(ctx.channel());
            ctx.fireChannelInactive();
        }
    }

    /** The request deadline from accept, then the answer's deadline from the request's arrival. */
    private final class Deadlines extends ChannelDuplexHandler {
        private final ConnectionCap cap;
        private ScheduledFuture<?> timer;

        Deadlines(ConnectionCap cap) {
            this.cap = cap;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            arm(ctx, REQUEST_DEADLINE_MS);
            ctx.fireChannelActive();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object message) {
            if (message instanceof FullHttpRequest) {
                cap.requestArrived(ctx.channel());
                arm(ctx, RESPONSE_DEADLINE_MS);
            }
            ctx.fireChannelRead(message);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (timer != null) {
                timer.cancel(false);
            }
            ctx.fireChannelInactive();
        }

        private void arm(ChannelHandlerContext ctx, long ms) {
            if (timer != null) {
                timer.cancel(false);
            }
            timer = ctx.executor().schedule(() -> ctx.close(), ms, TimeUnit.MILLISECONDS);
        }
    }

    /** Hands a whole request to the handler and writes its answer, then closes the connection. */
    private final class Dispatch extends ChannelInboundHandlerAdapter {
        private boolean answered;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object message) {
            if (!(message instanceof FullHttpRequest request)) {
                io.netty.util.ReferenceCountUtil.release(message);
                return;
            }
            try {
                if (answered) {
                    return;
                }
                answered = true;
                if (request.decoderResult().isFailure()) {
                    write(ctx, Response.text(400, "bad request\n"));
                    return;
                }
                Request seen = new Request(request.method().name(), request.uri(), request.headers().copy());
                CompletableFuture<Response> answer;
                try {
                    answer = handler.apply(seen);
                } catch (RuntimeException e) {
                    answer = CompletableFuture.failedFuture(e);
                }
                answer.whenComplete((response, failure) -> write(ctx, failure == null ? response
                        : Response.text(500, "internal error: " + failure + "\n")));
            } finally {
                request.release();
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // A client that resets its connection is no fault of ours: close it without a log line.
            ctx.close();
        }

        private void write(ChannelHandlerContext ctx, Response response) {
            FullHttpResponse out = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
                    HttpResponseStatus.valueOf(response.status()), Unpooled.wrappedBuffer(response.body()));
            response.headers().forEach((name, value) -> out.headers().set(name, value));
            out.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, response.body().length);
            out.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            ctx.writeAndFlush(out).addListener(ChannelFutureListener.CLOSE);
        }
    }
}
