import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Observable } from 'rxjs';
import { AccessTrackerService } from '../access-tracker.service.js';

/**
 * Writes a DICOMweb retrieval into the audit trail (`STUDY_RETRIEVED`, batched by the access
 * tracker) once its response has been sent with a success status: who (the client address), how
 * (WADO-RS or WADO-URI, the path), what (the study) and the status (200, or 206 when incomplete).
 */
@Injectable()
export class RetrievalAuditInterceptor implements NestInterceptor {
  constructor(private readonly tracker: AccessTrackerService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    const study = (req.params as Record<string, string | undefined>).study ?? (typeof req.query.studyUID === 'string' ? req.query.studyUID : undefined);
    if (study) {
      res.once('finish', () => {
        if (res.statusCode >= 300) return;
        this.tracker.retrieved({
          actor: `HTTP:${req.socket.remoteAddress ?? ''}`,
          studyIuid: study,
          detail: { via: req.path.startsWith('/wado') ? 'WADO-URI' : 'WADO-RS', path: req.originalUrl.split('?')[0], status: res.statusCode },
        });
      });
    }
    return next.handle();
  }
}
